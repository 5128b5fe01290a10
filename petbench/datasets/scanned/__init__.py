"""Datasets read from a user's folder of scans, the layer the ``udpet`` and ``folder`` datasets share.

names (doses, found sources) -> nifti_source / the dataset's own readers (headers, pixels) ->
collection (checks, conversion, the subject) -> preprocess (the crop) -> cache; labels (optional
label NIfTIs for region and lesion metrics); problems (what is reported); scanned_dataset (the
:class:`~petbench.Dataset` base class). Nothing here knows a dataset's naming rules: ``udpet`` and
``folder`` find their subjects and hand this layer what they found.
"""
