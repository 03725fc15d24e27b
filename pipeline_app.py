"""CDK entry point: builds the app and synthesizes it (issue 11 puts the pipeline stack here)."""

from stages.app import build_app

build_app().synth()
