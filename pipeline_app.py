"""CDK entry point: builds the app and synthesizes it (issue 11 puts the pipeline stack here)."""

import sys

from stages.app import build_app
from stages.components.web_client import MissingFrontendBuild

try:
    app = build_app()
except MissingFrontendBuild as error:
    sys.exit(f"cdk synth: {error}")
app.synth()
