"""What a grade demands of a reader, in words, as this deployment's policy file sets it.

The upload form's grade choices and the document page's "Reading needs" read these, so a compiler choosing a
grade is told the rules that will govern the file, not the product's default table: a deployment that asks
a loan for grade 1, or two approvals and a custodian's release for grade 2, changes what these say too.
"""

from __future__ import annotations

from flask_babel import gettext, ngettext

from vault.config.policy_file import GradeRule
from vault.core.grades import grade_name
from vault.policy.loans import max_days


def reading_needs(rule: GradeRule) -> str:
    """What someone other than the compiler needs to read a file of this grade, translated now: a loan and
    its approvals, a custodian's release, its longest term, the trusted-place rule and whether it may leave.

    Args:
        rule: the grade's rule as the loaded policy has it.
    """
    if rule.loan_required:
        text = ngettext("a loan with %(num)d approval", "a loan with %(num)d approvals", max(1, rule.approvals))
        if rule.release_required:
            text += gettext(", released by a custodian")
        text += gettext(", for at most %(d)d days", d=max_days(rule))
    else:
        text = gettext("no loan")
    if rule.trusted_places_only:
        text += gettext("; only from a trusted place")
    if not rule.download:
        text += gettext("; no download")
    elif rule.download_original:
        # Translators: follows what a grade needs, e.g. "no loan; the original file may be downloaded"
        text += gettext("; the original file may be downloaded")
    return text


def grade_choice(grade: int, rule: GradeRule) -> str:
    """How the upload form offers a grade: its number and name (those the banner and the stamp show), then
    what this deployment's policy asks of a reader and how many views each person has.

    The hints were once fixed words ("loan with approval") that described the default table; where a
    policy file changed a grade, the form promised rules the file would not be kept under.
    """
    terms = reading_needs(rule) + ngettext("; %(num)d view per person", "; %(num)d views per person", rule.views)
    # Translators: a choice of the upload form, e.g. "Grade 2 — important (a loan with 1 approval, ...)"
    return gettext("Grade %(n)d — %(name)s (%(terms)s)", n=grade, name=grade_name(grade), terms=terms)


def custodian_hint(rules: dict[int, GradeRule]) -> str:
    """What the upload form says a file's custodian does, translated now: the grades whose loans this
    deployment's policy has a custodian release, read from the loaded rules.

    The hint once said "releases grade 3 loans" whatever the policy file set, so where it asked a release for
    grade 2 as well, or for none, a compiler was told the wrong thing about whom they were choosing.

    Args:
        rules: every grade's rule as the loaded policy has it.
    """
    released = [grade for grade in sorted(rules) if rules[grade].loan_required and rules[grade].release_required]
    if not released:
        return gettext("The person who keeps the file; not you. No loan of any grade waits for a custodian's "
                       "release under this policy.")
    # Translators: the grades whose loans the custodian releases, e.g. "2, 3"
    return ngettext("The person who keeps the file and releases its grade %(grades)s loans; not you.",
                    "The person who keeps the file and releases its loans of grades %(grades)s; not you.",
                    len(released), grades=", ".join(str(grade) for grade in released))
