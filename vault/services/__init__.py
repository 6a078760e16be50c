"""Domain services: every change of state and every read of bytes goes through one of these.

Services take the runtime, a session (the unit of work; the caller commits), the acting user and the
access context, call the policy, do the work and append the audit record in the same transaction.
"""
