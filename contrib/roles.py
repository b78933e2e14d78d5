"""The roles a bearer token of `omniroute serve` may carry, most powerful first.

Apart from `models.py`, whose classes and OpenAPI document every other command would
otherwise import at start (12 ms) for `omniroute token --role`'s choices.
"""

ROLES = ("admin", "platform", "supervisor")
