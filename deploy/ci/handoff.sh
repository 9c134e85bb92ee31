#!/usr/bin/env bash
# CI's hand-off to gitops, the same from any runner (Jenkins, Travis, GitLab CI, Actions):
# commit the image CI just pushed into the deployment repository, then wait until that commit
# is healthy on every node.
#
#   deploy/ci/handoff.sh IMAGE DEPLOYMENT [CONTAINER] [NAMESPACE]
#
# Environment: GITOPS_REPO (the deployment repository; credentials as for git, or
# GITOPS_GIT_TOKEN), GITOPS_SERVER (the reconciler's API), GITOPS_API_TOKEN (its bearer
# token), optional GITOPS_BRANCH, GITOPS_PATH, GITOPS_WAIT_TIMEOUT (default 10m).
# BUILD_URL / TRAVIS_BUILD_WEB_URL / CI_JOB_URL, when set, are written into the commit.
#
# Exit status: 0 deployed and healthy; 1 rejected, failed or rolled back (the reason is
# printed; the previous version keeps serving); 2 timed out or gitops could not be asked.
set -euo pipefail
image=${1:?usage: handoff.sh IMAGE DEPLOYMENT [CONTAINER] [NAMESPACE]}
deployment=${2:?usage: handoff.sh IMAGE DEPLOYMENT [CONTAINER] [NAMESPACE]}
container=${3:-$deployment}
namespace=${4:-default}
gitops=${GITOPS_CLI:-gitops}

revision=$($gitops set image "deployment/$deployment" "$container=$image" -n "$namespace" --push -o sha)
echo "handoff: deployment/$deployment -> $image in commit $revision" >&2
exec $gitops sync --wait --revision "$revision" --timeout "${GITOPS_WAIT_TIMEOUT:-10m}"
