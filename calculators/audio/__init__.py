"""Speech-to-text: OVMS's S2tCalculator over openvino-genai's WhisperPipeline."""
