from .runner import (adapt_launcher, build_model_from_cfg, build_runner_from_cfg, library_of,
                     load_config)

__all__ = [
    'adapt_launcher', 'build_model_from_cfg', 'build_runner_from_cfg', 'library_of', 'load_config'
]
