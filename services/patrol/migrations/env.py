from services.common.migrations import run_env
from services.patrol.models import Base

run_env(Base.metadata)
