"""The standard components. Each module registers through the ``ablate``
entry-point group, exactly as a third-party plugin package would."""
