"""CDK entry point: builds the app (the stages and the pipeline that deploys them) and synthesizes it."""

import sys

from pipeline.app import build_app
from stages.components.web_client import MissingFrontendBuild

try:
    app = build_app()
except MissingFrontendBuild as error:
    sys.exit(f"cdk synth: {error}")
app.synth()
