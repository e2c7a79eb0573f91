"""Reporting (rules/tables.smk): tables with their intervals (`tables`, `uncertainty`), the
paper's claims with verdicts (`claims`) and the figures."""
