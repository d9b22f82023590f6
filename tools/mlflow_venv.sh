#!/usr/bin/env bash
# Creates build/venv-mlflow (or the folder given as $1) with MLflow from
# PyPI, idempotently: a venv whose python imports mlflow is left alone.
# The tracking test (test_track_pocl_only) starts `mlflow server` and reads
# the runs back through mlflow.tracking.MlflowClient from this venv; it
# never installs anything itself. Uses the `python3` on PATH (pyenv's).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-build/venv-mlflow}"
MLFLOW_SPEC="${TLCL_MLFLOW_SPEC:-mlflow>=2.10,<3}"
# MLflow 2.x's SQL store imports a pool class SQLAlchemy 2.1 removed
EXTRA_SPEC="sqlalchemy>=2,<2.1"
# the server's SQL store must import, not only the package
CHECK="import mlflow, mlflow.store.tracking.sqlalchemy_store"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$CHECK" 2>/dev/null && [ -x "$VENV/bin/mlflow" ]; then
  echo "mlflow_venv: $VENV has mlflow $("$VENV/bin/python" -c 'import mlflow; print(mlflow.__version__)')"
  exit 0
fi
echo "mlflow_venv: installing $MLFLOW_SPEC $EXTRA_SPEC into $VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "$MLFLOW_SPEC" "$EXTRA_SPEC"
"$VENV/bin/python" -c "$CHECK; print('mlflow_venv: mlflow', mlflow.__version__, 'in $VENV')"
