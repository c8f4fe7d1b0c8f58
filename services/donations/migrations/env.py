from services.common.migrations import run_env
from services.donations.models import Base

run_env(Base.metadata)
