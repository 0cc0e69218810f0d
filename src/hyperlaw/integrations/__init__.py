"""Integrations with training frameworks, each imported only when used (and each an extra):
`torch` (TrainingLoop), `distributed` (trials on several processes), `lightning`,
`transformers`, `keras` (Keras 3 on the torch backend), `hypergradient`, `autolrs`."""
