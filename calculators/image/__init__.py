"""Image generation and edits: OVMS's ImageGenCalculator on genai's Text2Image, Image2Image and Inpainting pipelines."""
