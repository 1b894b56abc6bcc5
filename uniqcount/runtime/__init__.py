"""The runtime around the core: the consumer loop and its rebalances, sources, sinks, settings, progress."""
