"""yiwu_credit: credit-based risk supervision of market entities (义乌信用分级分类监管).

Point-in-time credit features from public-credit records, a calibrated tiered risk model with
reason codes, and double-random (双随机) inspection planning, drawing and estimation.
"""

__version__ = "0.1.0"

from .bundle import Bundle, load_bundle, save_bundle  # noqa: E402
from .catalogue import Catalogue, load_catalogue  # noqa: E402
from .dataset import Dataset, load_dataset, validation_report  # noqa: E402
from .errors import BundleError, ConfigError, DataValidationError, PlanError, YiwuCreditError  # noqa: E402
from .features import build_features, override_facts  # noqa: E402
from .labels import build_labels  # noqa: E402
from .model import TieredRiskModel  # noqa: E402
from .policy import Policy, apply_overrides, load_policy  # noqa: E402

__all__ = [
    "Bundle", "BundleError", "Catalogue", "ConfigError", "DataValidationError", "Dataset", "PlanError", "Policy",
    "TieredRiskModel", "YiwuCreditError", "__version__", "apply_overrides", "build_features", "build_labels",
    "load_bundle", "load_catalogue", "load_dataset", "load_policy", "override_facts", "save_bundle",
    "validation_report",
]
