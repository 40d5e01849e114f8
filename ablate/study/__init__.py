"""A study: the study file, its validated config, and its design (the arms). Reads the
plugin and data layers and the root contract; never torch, never the train layer."""
