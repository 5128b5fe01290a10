"""``petbench report``: one self-contained HTML page of a results folder (leaderboard, Tables I/II,
per-subject distributions, an image viewer, figures and provenance), built from the run records alone.

The page renders the same table objects as ``petbench compare`` (:mod:`petbench.report.tables` is the
one adapter between them and the page); every section that cannot be made leaves a gap with one line
saying why (:class:`petbench.report.sections.Gap`). The JavaScript is petbench's own, shipped in
``static/``: nothing is fetched when the page is opened.
"""
