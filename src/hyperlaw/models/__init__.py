"""Surrogate models shared by samplers, schedulers and analysis: the Matérn Gaussian process
(`gp`), its acquisition (`acquisition`) and the acquisition's maximizer (`optimizer`), target
transforms (`targets`), PB2's time-varying GP bandit (`pb2`) and the linear algebra they share
(`linalg`). Pure numpy/scipy: no store, no history."""
