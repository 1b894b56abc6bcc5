"""Developer tools: the local KRaft broker, the sample and its generator."""
