"""Installers that carry out the steps of a plan: apks and wheels."""
