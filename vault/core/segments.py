"""Customer segments: how much a customer matters to the company (VIP and key customers are handed over
with a confirmation when their owner leaves). A plain vocabulary, shared by the models and the policy file."""

from enum import StrEnum


class Segment(StrEnum):
    VIP = "vip"
    KEY = "key"
    ORDINARY = "ordinary"
