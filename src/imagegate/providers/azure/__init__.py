"""Azure OpenAI: the user's own deployments of OpenAI's image models, declared in the config
file under ``azure_deployments``."""
