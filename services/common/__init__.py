"""The shared kernel: config, database provider, outbox, inbox, event envelope and errors.

It knows no domain: nothing here names a zone, a campaign or a case.
"""
