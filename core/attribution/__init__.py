"""Multi-touch attribution: journeys → distinct paths → heuristic and data-driven models, compared side by side."""

from core.attribution.compare import (
    DEFAULT_MODELS,
    MODELS,
    attribute,
    describe,
    detect_format,
    parse_models,
    run_attribution,
)
from core.attribution.journeys import (
    JourneyValidationError,
    PathSet,
    aggregate_journeys,
    aggregate_paths,
    read_journeys_csv,
    validate_journeys,
    validate_paths,
)

__all__ = [
    "DEFAULT_MODELS",
    "MODELS",
    "JourneyValidationError",
    "PathSet",
    "aggregate_journeys",
    "aggregate_paths",
    "attribute",
    "detect_format",
    "describe",
    "parse_models",
    "read_journeys_csv",
    "run_attribution",
    "validate_journeys",
    "validate_paths",
]
