"""Placeholder until the node tree lands."""
classes = ()
def register_extra(): pass
def unregister_extra(): pass
