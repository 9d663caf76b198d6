"""What each exercise must not call: the reference implementation of the very thing it asks
for (or a library doing the same job in one call).

``FORBIDDEN[assignment][solution grade_id]`` lists qualified names; a name matches itself and
everything under it (``"sklearn.cluster"`` covers ``sklearn.cluster.KMeans``). A solution cell
that refers to one of them (directly, through an alias, ``from ... import ... as``, or
``getattr(module, "name")``) is flagged for a human in the report; the score is not changed
(the answers were still judged right or wrong outside the kernel).

Names NOT listed are allowed: ``elbow`` in 01-kmeans is meant to call
``helpers.clustering.kmeans``. ``EVERYWHERE`` applies to every student cell of every unit.

Add a unit's entry when its notebook lands (tests/test_grading_static.py checks that every
solution cell of every unit has one).
"""

EVERYWHERE = (
    "helpers.checks._core",    # the checkers' machinery and recording: never student business
)
# Also flagged everywhere (grading.static): any private name under helpers.checks
# (``helpers.checks.kmeans._check_labels``); calling a public checker to test oneself is fine.

_CLUSTERING = "helpers.clustering"

FORBIDDEN = {
    "01-kmeans": {
        "assign_clusters": (f"{_CLUSTERING}.assign_clusters", f"{_CLUSTERING}.kmeans_step",
                            f"{_CLUSTERING}.kmeans", f"{_CLUSTERING}._assign",
                            f"{_CLUSTERING}._lloyd", "helpers._kmeans_torch", "helpers._kmeans", "sklearn.cluster",
                            "sklearn.metrics.pairwise_distances_argmin",
                            "sklearn.metrics.pairwise_distances_argmin_min", "scipy.cluster"),
        "update_centers": (f"{_CLUSTERING}.update_centers", f"{_CLUSTERING}.kmeans_step",
                           f"{_CLUSTERING}.kmeans", f"{_CLUSTERING}._update",
                           f"{_CLUSTERING}._cluster_sums", f"{_CLUSTERING}._lloyd",
                           "helpers._kmeans_torch", "helpers._kmeans", "sklearn.cluster", "scipy.cluster"),
        "farthest_first": (f"{_CLUSTERING}.farthest_first", f"{_CLUSTERING}.init_centers",
                           f"{_CLUSTERING}.kmeans", "helpers._kmeans_torch", "helpers._kmeans"),
        "lloyd": (f"{_CLUSTERING}.kmeans", f"{_CLUSTERING}.kmeans_step", f"{_CLUSTERING}._lloyd",
                  f"{_CLUSTERING}.assign_clusters", f"{_CLUSTERING}.update_centers",
                  "helpers._kmeans_torch", "helpers._kmeans", "sklearn.cluster", "scipy.cluster"),
        "compute_inertia": (f"{_CLUSTERING}.inertia", f"{_CLUSTERING}.kmeans",
                            "helpers._kmeans_torch", "helpers._kmeans", "sklearn.cluster"),
        "elbow": (f"{_CLUSTERING}.elbow_k", "sklearn.cluster"),
    },
    "02-dbscan": {
        "region_query": (f"{_CLUSTERING}.region_query", f"{_CLUSTERING}.dbscan",
                         "helpers._dbscan", "sklearn.cluster", "sklearn.neighbors",
                         "sklearn.metrics.pairwise", "scipy.spatial"),
        "point_types": (f"{_CLUSTERING}.core_points", f"{_CLUSTERING}.dbscan",
                        f"{_CLUSTERING}.dbscan_steps", "helpers._dbscan", "sklearn.cluster",
                        "sklearn.neighbors", "scipy.spatial"),
        "my_dbscan": (f"{_CLUSTERING}.dbscan", f"{_CLUSTERING}.dbscan_steps", "helpers._dbscan",
                      "sklearn.cluster", "sklearn.neighbors", "scipy.spatial"),
        "k_distances": (f"{_CLUSTERING}.k_distance", "helpers._dbscan", "sklearn.neighbors",
                        "scipy.spatial"),
        "eps_chosen": (),
        "ari_scores": (),      # meant to call clustering.dbscan and clustering.kmeans
    },
    "03-convolution": {
        "flip_kernel": ("helpers.conv.convolve2d",),
        # the exercise asks for a flip and a cross-correlation: correlate2d is allowed
        "convolve_via_correlate": ("helpers.conv.convolve2d", "scipy.signal.convolve2d",
                                   "scipy.signal.convolve", "scipy.signal.fftconvolve",
                                   "scipy.signal.oaconvolve", "scipy.ndimage.convolve",
                                   "torch.nn.functional"),
        "conv_output_size": ("helpers.conv.output_size", "helpers.conv._spatial_output_size"),
        "same_padding": (),
        "conv_layer_params": ("helpers.conv.conv_params",),
        "conv2d_forward": ("helpers.conv.conv2d", "helpers.conv._conv2d_naive",
                           "helpers.conv._conv2d_im2col", "helpers.conv._conv2d_torch",
                           "scipy.signal", "scipy.ndimage", "torch.nn"),
        "conv1x1": ("helpers.conv.conv2d", "helpers.conv._conv2d_naive",
                    "helpers.conv._conv2d_im2col", "helpers.conv._conv2d_torch", "torch.nn"),
    },
    "04-pooling": {
        "pool_output_size": ("helpers.pool._check_pool_args", "helpers.conv.output_size"),
        "max_pool_forward": ("helpers.pool.max_pool2d", "helpers.pool._pool", "torch.nn",
                             "skimage"),
        "max_pool_backward": ("helpers.pool.max_pool2d_backward", "helpers.pool._route",
                              "torch.nn", "torch.autograd"),
        "avg_pool_forward": ("helpers.pool.avg_pool2d", "helpers.pool._pool", "torch.nn",
                             "skimage"),
    },
    "05-optimisers": {
        "sgd": ("helpers.optim.sgd", "helpers.optim._start", "torch.optim"),
        "sgd_momentum": ("helpers.optim.sgd_momentum", "helpers.optim.nesterov",
                         "helpers.optim._start", "torch.optim"),
        "adam": ("helpers.optim.adam", "helpers.optim._start", "torch.optim"),
        "race": ("helpers.optim.run_rule", "helpers.widgets"),
        "train_minibatch": ("torch.optim",),
        "lbfgs_full_vs_minibatch": ("scipy.optimize", "torch.optim"),  # meant: optim.lbfgs
        "lr_schedule": ("helpers.optim.step_on_plateau", "helpers.schedules",
                        "torch.optim.lr_scheduler"),
    },
    "06-case-study-cnns": {
        "lenet5_module": ("helpers.models.lenet5", "torchvision.models"),
        "fit_predict": ("helpers.train",),
        "shape_table": ("helpers.models.layer_shapes", "helpers.models.summary",
                        "helpers.layer_tables.layer_shapes", "helpers.summary"),
        "count_params": ("helpers.models.layer_params", "helpers.models.summary",
                         "helpers.layer_tables.layer_params", "helpers.summary"),
        "residual_block": ("helpers.models.BasicBlock", "helpers.models.resnet",
                           "helpers.models.cifar_resnet", "torchvision.models"),
        "bottleneck_block": ("helpers.models.Bottleneck", "helpers.models.resnet",
                             "torchvision.models"),
    },
}


def forbidden_for(assignment, grade_id):
    """Qualified names the solution cell ``grade_id`` of ``assignment`` must not use."""
    return tuple(FORBIDDEN.get(assignment, {}).get(grade_id, ())) + EVERYWHERE
