"""The Google Gemini API's image models ("Nano Banana"): generateContent with inline images."""
