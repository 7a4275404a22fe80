"""The browser fixtures (`browser`, `page`, `page_without_js`) are registered once, in
tests/conftest.py, from tests/browser/support.py: a second registration here would start a
second Playwright in the same session when end-to-end tests use them too."""
