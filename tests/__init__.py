"""The test suite: a regular package, so `from tests.helpers ...` finds this folder and not a
`tests` package that another installed distribution ships (tests/test_layout.py)."""
