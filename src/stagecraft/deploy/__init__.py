"""Deploy: build, ship, roll out with zero downtime, record releases (SPEC section 6).

Host layout, names, labels and ledger records: docs/adr/0005-deploy-design.md.
"""
