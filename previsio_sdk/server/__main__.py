"""``python -m previsio_sdk.server``."""

from .serve import main

main()
