"""What many tests share: factories for the things of the domain and the injectable clock.

Import factories from `tests.support.factories`; the `clock` fixture (`tests.support.clock`) is offered to
every test by the top-level conftest.
"""
