"""Scripts around jobping, run from the repository's root: the sample generator, the fault suite, the soak."""
