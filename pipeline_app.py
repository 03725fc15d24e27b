"""CDK entry point: builds the app (the stages and the pipeline that deploys them) and synthesizes it."""

import os
import sys

from pipeline.app import build_pipeline_app
from stages.components.web_client import MissingFrontendBuild

try:
    # The pipeline's Synth step sets COMMIT_ID (its source's commit): what the deployed build reports.
    app = build_pipeline_app(commit=os.environ.get("COMMIT_ID", "").strip() or None)
except MissingFrontendBuild as error:
    sys.exit(f"cdk synth: {error}")
app.synth()
