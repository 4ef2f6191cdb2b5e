"""Identity clustering: group face photos by person when the number of people is unknown.

Faces are described by a descriptor of :mod:`vision_lib.models` (:func:`vision_lib.faces.detect_paths`
with ``descriptors=<name>``), where two faces of the same person are usually closer than the
descriptor's same-person distance (its ``threshold``, e.g. dlib's documented 0.6; the default
descriptor, :data:`~vision_lib.models.DEFAULT_DESCRIPTOR`, has its own) and faces of different
people usually farther. Default thresholds are shares of that distance (:data:`THRESHOLD_SHARES`;
"the threshold" below is that default, or the ``threshold`` given). :class:`IdentityClustering` turns
that into groups:

==================  ===========================================================================
``hybrid``          (default) dense cores found by HDBSCAN (scikit-learn's default
                    ``min_cluster_size`` of 5; ``core_min_samples=1``: no density smoothing, a
                    small set's look-alikes apart but one person's poses cut; by default each
                    core without smoothing that would not join a smoothed core as a collection's
                    add lets a group join a person, under the open-set limit for groups calibrated
                    on the cores, is made a core: ``split_lookalikes``), each split by
                    average linkage at the threshold (density alone can chain several people into
                    one core where a collection is dense everywhere); a piece rejoins a larger
                    piece of its core when that is the only piece whose 5 nearest faces are, on
                    average, closer than the threshold.
                    Every face HDBSCAN left as noise joins the core whose 5 nearest faces
                    are on average closer than the threshold, when only one core is (a face near
                    several: the core whose faces are on average closer, as before), the rest are
                    grouped by average linkage at the threshold, and such a group joins a core by
                    the same 5-nearest test. Cores separate look-alikes (a density valley between
                    two people) that an absolute distance merges, and never merge with each other;
                    the local test lets a profile face join its person's other profiles, which an
                    average over all of a large core's poses refuses (``attach="mean"``: that
                    average, the rule before 2026-12-02)
``agglomerative``   average linkage cut at a distance threshold (default: the descriptor's
                    same-person distance, :data:`THRESHOLD_SHARES`), or into ``n_clusters`` groups
``chinese_whispers`` dlib's graph clustering (for any descriptor): link faces closer than the
                    threshold (default 5/6 of the same-person distance)
``hdbscan``         density based (``min_cluster_size``); sparse faces become noise
``dbscan``          density based with a fixed radius (``threshold`` as ``eps``; default 5/6 of
                    the same-person distance)
``kmeans``          needs ``n_clusters`` (estimated with the default method when not given);
                    assigns every face, never reports noise
==================  ===========================================================================

A face that fits no group (a singleton of the threshold methods, or HDBSCAN/DBSCAN noise) gets
label ``-1`` (unassigned) instead of being forced into a group. ``max_clusters`` caps the number of
groups for a coarse segmentation: the closest groups are merged (average linkage of their
centroids) until the cap holds.

Metrics: :func:`internal_metrics` (silhouette, Davies-Bouldin, Calinski-Harabasz, on assigned faces
only) and :func:`external_metrics` (purity, ARI, NMI, pairwise and BCubed precision/recall/F)
where **every unassigned item counts as its own singleton cluster**: it is never credited with
being grouped with its own person (recall pays), and never blamed for a wrong merge.

Export (:func:`export_clusters`): ``OUT/cluster_NN/`` with copies (or hard links) of the photos,
``OUT/unassigned/``, ``OUT/clusters.csv`` (``source,face_index,cluster``) and ``OUT/metrics.json``.
"""
from __future__ import annotations

from ..io import CSV_TEXT, Rejected, copy_grouped, flat_name, locked_output, prepare_output  # noqa: F401 (re-exported)
from ..tables import FaceTable, face_table, subject_face  # noqa: F401 (re-exported)
from .estimator import (ALGORITHMS, ATTACH_RULES, CLUSTER_METHODS, CONFIDENT_CORES, DEFAULT_THRESHOLDS,  # noqa: F401
                        GRAPH_LIMIT, HYBRID_CORE_SIZE, HYBRID_MIN_SAMPLES, THRESHOLD_SHARES, IdentityClustering,
                        _attach_local, _attach_noise, _rejoin_pieces, cluster_faces)
from .export import (FaceSet, cluster_folder, cluster_table, cluster_table_faces, core_faces, export_clusters,
                     face_set, group_folder, load_descriptor_table, table_faces, table_threshold)
from .compare import METHOD_PRESETS, compare_methods, compare_presets, format_rows
from .metrics import INTERNAL_SAMPLE, external_metrics, internal_metrics, singletons_for_noise

__all__ = ["CLUSTER_METHODS", "THRESHOLD_SHARES", "DEFAULT_THRESHOLDS", "HYBRID_CORE_SIZE", "HYBRID_MIN_SAMPLES",
           "GRAPH_LIMIT", "ALGORITHMS", "ATTACH_RULES", "IdentityClustering", "cluster_faces", "INTERNAL_SAMPLE", "internal_metrics",
           "singletons_for_noise", "external_metrics", "FaceTable", "FaceSet", "subject_face", "face_set", "group_folder",
           "export_clusters", "cluster_folder", "load_descriptor_table", "table_threshold", "table_faces",
           "cluster_table", "METHOD_PRESETS", "compare_presets", "compare_methods", "format_rows"]
