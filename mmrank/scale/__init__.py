"""Scale-out engines: Ray Data pipelines for corpus encoding and batch reranking (:mod:`mmrank.scale.ray_engine`)."""
