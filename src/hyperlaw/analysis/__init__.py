"""Analysis of studies: trials as columns, server-side reduction, parameter importance."""

from hyperlaw.analysis.columns import StudyColumns
from hyperlaw.analysis.importance import ped_anova

__all__ = ["StudyColumns", "ped_anova"]
