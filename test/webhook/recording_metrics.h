#pragma once
// Recording fakes of the injection metrics interfaces (webhook/webhook_metrics.h,
// controller/pod_annotations/pod_annotation_metrics.h): they count each call
// by result, so tests can check that the components report. Thread-safe.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "controller/pod_annotations/pod_annotation_metrics.h"
#include "webhook/webhook_metrics.h"

namespace exitrec::testing {

class RecordingWebhookMetrics final : public WebhookMetrics {
 public:
  void reviewed(InjectionResult result, bool inScope, double /*seconds*/) override {
    reviews_[static_cast<std::size_t>(result)].fetch_add(1);
    (inScope ? inScope_ : outOfScope_).fetch_add(1);
  }
  void certificateLoaded(bool ok, double /*notAfterUnixSeconds*/) override {
    (ok ? certificatesLoaded_ : certificatesFailed_).fetch_add(1);
  }
  std::uint64_t reviews(InjectionResult r) const {
    return reviews_[static_cast<std::size_t>(r)].load();
  }
  std::uint64_t inScopeReviews() const { return inScope_.load(); }
  std::uint64_t certificatesLoaded() const { return certificatesLoaded_.load(); }

 private:
  std::array<std::atomic<std::uint64_t>, kInjectionResults> reviews_{};
  std::atomic<std::uint64_t> inScope_{0}, outOfScope_{0};
  std::atomic<std::uint64_t> certificatesLoaded_{0}, certificatesFailed_{0};
};

class RecordingPodAnnotationMetrics final : public PodAnnotationMetrics {
 public:
  void injection(InjectionResult result) override {
    injections_[static_cast<std::size_t>(result)].fetch_add(1);
  }
  std::uint64_t injections(InjectionResult r) const {
    return injections_[static_cast<std::size_t>(r)].load();
  }

 private:
  std::array<std::atomic<std::uint64_t>, kInjectionResults> injections_{};
};

}  // namespace exitrec::testing
