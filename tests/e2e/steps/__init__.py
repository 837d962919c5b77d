"""Steps that several case modules share: a case module imports from here,
never from another case module."""
