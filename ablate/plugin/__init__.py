"""Plugins: the registry of components, load-time checks of hook implementations, the per-
run plugin manager, disabled plugins and plugin versions. Imports only the root
contract."""
