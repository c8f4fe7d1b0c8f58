from services.common.migrations import run_env
from services.welfare.models import Base

run_env(Base.metadata)
