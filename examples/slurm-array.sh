#!/bin/bash
# Embeds every audio file under $DATA/audio with a 16-task Slurm job array, one GPU per task; the
# outputs mirror the tree under $DATA/embeddings. vggish reads SLURM_ARRAY_TASK_ID (minus
# SLURM_ARRAY_TASK_MIN) and SLURM_ARRAY_TASK_COUNT: task i embeds the files with
# sha256(relative path) mod 16 == i. Keep the array contiguous (0-15, not 0-15:2).
#
# Outputs are written atomically and existing ones are skipped: resubmitting finishes what a
# cancelled or timed-out task left. A task exits 1 if some files could not be decoded; they are
# listed in $DATA/embeddings/vggish-errors.<i>-of-16.jsonl.
#
# Fetch the weights once before submitting, on a node with internet access:
#   VGGISH_CACHE=/shared/cache/vggish vggish weights download
#
# In a container instead of an installed vggish (the image of `make docker-cuda`, vggish-go:cuda, or
# of `make docker`, vggish-go:cpu, pushed to a registry the nodes reach), replace the srun line by one
# of these. Both runtimes run the task as the submitting user and pass its environment (VGGISH_CACHE
# below included) into the container, so the data and the cache are bound at the same paths:
#   with pyxis/enroot:
#     srun --container-image=registry.example.com#vggish-go:cuda \
#       --container-mounts="$DATA:$DATA,$VGGISH_CACHE:$VGGISH_CACHE" \
#       vggish embed --workers "$SLURM_CPUS_PER_TASK" --out-dir "$DATA/embeddings" "$DATA/audio"
#   with apptainer (once: apptainer build vggish-go_cuda.sif docker://registry.example.com/vggish-go:cuda):
#     srun apptainer exec --nv --bind "$DATA,$VGGISH_CACHE" vggish-go_cuda.sif \
#       vggish embed --workers "$SLURM_CPUS_PER_TASK" --out-dir "$DATA/embeddings" "$DATA/audio"
#SBATCH --job-name=vggish-embed
#SBATCH --array=0-15
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --output=vggish-%A_%a.log
set -euo pipefail

DATA=${DATA:-/shared/data}
export VGGISH_CACHE=${VGGISH_CACHE:-/shared/cache/vggish}

srun vggish embed --workers "$SLURM_CPUS_PER_TASK" --out-dir "$DATA/embeddings" "$DATA/audio"
