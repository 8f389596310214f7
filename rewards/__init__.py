"""Rule-based, verifiable rewards: math, format, code, language, length, and custom plug-ins."""
