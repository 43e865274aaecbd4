"""Data-quality gate: Great Expectations suites per dataset, reports in the lake.

Importing this package is cheap: Great Expectations, pandas and pyarrow load only
when a gate runs.
"""

from include.mlops.quality.gate import (
    DataQualityError,
    QualityResult,
    check_partition,
    format_quality_failure,
    quiet_gx_logging,
    raise_for_quality,
    report_prefix,
    run_quality_gate,
)
from include.mlops.quality.sampling import DEFAULT_MAX_ROWS, read_for_quality
from include.mlops.quality.suites import (
    build_suite_from_profile,
    declared_suite,
    expectation,
    load_suite,
    resolve_suite,
    save_suite,
    suite_key,
    validate_suite,
)

__all__ = [
    "DEFAULT_MAX_ROWS",
    "DataQualityError",
    "QualityResult",
    "build_suite_from_profile",
    "check_partition",
    "declared_suite",
    "expectation",
    "format_quality_failure",
    "load_suite",
    "quiet_gx_logging",
    "raise_for_quality",
    "read_for_quality",
    "report_prefix",
    "resolve_suite",
    "run_quality_gate",
    "save_suite",
    "suite_key",
    "validate_suite",
]
