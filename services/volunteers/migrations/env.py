from services.common.migrations import run_env
from services.volunteers.models import Base

run_env(Base.metadata)
