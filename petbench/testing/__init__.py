"""Tools for testing petbench and its plugins: tiny data, a tiny method, isolated hosts, and the
conformance checks a plugin's test suite runs on everything it registers.

In a plugin's tests (see docs/writing-plugins.md)::

    from petbench.testing import check_method, conformance_tests
    import my_plugin.plugin

    test_conformance = conformance_tests(my_plugin.plugin)   # every method, dataset, metric it registers

    def test_my_method_with_other_options():
        check_method("my-method", options={"width": 4}, plugin=my_plugin.plugin)
"""
from .conformance import (
    CheckResult,
    ConformanceError,
    Report,
    check,
    check_dataset,
    check_method,
    check_metric,
    conformance_report,
    conformance_tests,
    dataset_report,
    method_report,
    metric_report,
    registered_names,
)
from .toys import TOY_PLUGIN, TinyDataset, TinyMethod, isolated_host

__all__ = [
    "CheckResult", "ConformanceError", "Report", "TOY_PLUGIN", "TinyDataset", "TinyMethod", "check",
    "check_dataset", "check_method", "check_metric", "conformance_report", "conformance_tests", "dataset_report",
    "isolated_host", "method_report", "metric_report", "registered_names",
]
