"""An arm's seeds trained as one model: the stacked forms of layers and components, which
runs may share a stack, and the stacked arithmetic of the loop."""
