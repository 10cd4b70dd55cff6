"""Loops, devices and compilation: what runs an agent's pure functions over environments.

``loop`` (compiled over ``envs`` vector envs), ``host_loop`` (Gymnasium envs on the host),
``devices`` (the runs axis over local devices) and ``compile`` (how the programs are compiled).
"""
