"""Black Forest Labs (FLUX) image edits: a queued job, submitted, polled and downloaded."""
