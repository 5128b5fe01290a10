"""petbench-baselines: the comparison methods of the S3PET paper's Table I as a petbench plugin.

``cyclegan``, ``autocontext``, ``argan``, ``cvtgan`` and ``semipet``; see the README for what
each takes from its paper or code and what is our 2D adaptation.
"""
__version__ = "0.1.0"
