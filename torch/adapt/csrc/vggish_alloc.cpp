// A caching allocator for libtorch's large CPU tensors. libtorch frees every activation after each
// layer and allocates it afresh for the next batch; glibc hands such blocks back to the kernel, and
// every batch then pays for hundreds of megabytes of page faults and zeroing (a third of the CPU time
// of a run). This allocator keeps freed large blocks for reuse, in size classes, and returns the least
// recently used ones to the kernel once they exceed the peak in use, so memory stays flat. oneDNN's
// buffers come through it too (libtorch registers the CPU allocator with ideep).
// github.com/vggish-go/vggish/torch declares vggish_cache_cpu_allocations and vggish_trim_cpu_cache.
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/version.h>

#include <sys/mman.h>

#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>

// libtorch 2.3 made Allocator::allocate non-const.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define VGGISH_ALLOCATE_CONST
#else
#define VGGISH_ALLOCATE_CONST const
#endif

namespace {

class CachingAllocator final : public c10::Allocator {
 public:
  CachingAllocator(size_t min_bytes, size_t min_cache) : min_bytes_(min_bytes), min_cache_(min_cache) {}

  c10::DataPtr allocate(size_t n) VGGISH_ALLOCATE_CONST override {
    void *p = n < min_bytes_ ? c10::alloc_cpu(n) : instance().take(size_class(n));
    return {p, p, &Delete, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &Delete; }

  // Declared pure in libtorch 2.3 and later.
  void copy_data(void *dest, const void *src, std::size_t count) const { std::memcpy(dest, src, count); }

  static CachingAllocator &instance();

  // trim unmaps every cached block and measures the peak in use afresh from now.
  void trim() {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Block &b : lru_) {
      munmap(b.p, b.size);
    }
    lru_.clear();
    by_size_.clear();
    cached_ = 0;
    peak_live_ = live_bytes_;
  }

 private:
  struct Block {
    void *p;
    size_t size;
  };

  // size_class rounds n up to one of four sizes per power of two: at most a quarter is wasted, and
  // blocks of nearby sizes are shared.
  static size_t size_class(size_t n) {
    size_t octave = size_t(1) << (63 - __builtin_clzll(n));
    size_t step = octave >= 16 ? octave / 4 : 4;
    return (n + step - 1) / step * step;
  }

  static void Delete(void *p) { instance().give(p); }

  void *take(size_t size) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = by_size_.find(size);
      if (it != by_size_.end()) {
        void *p = it->second->p;
        lru_.erase(it->second);
        by_size_.erase(it);
        cached_ -= size;
        use(p, size);
        return p;
      }
    }
    void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    if (p == MAP_FAILED) {
      throw std::bad_alloc();
    }
    // MAP_POPULATE: the block is about to be written (all but at most a quarter, the size class's
    // slack), and the kernel fills it in one call rather than a fault per page: 0.1 s less system
    // time per run, mostly for the weights. No MADV_HUGEPAGE: where THP defrag is "madvise" (the
    // common default) a fault on such a block reclaims and compacts memory first. Run after another
    // process had used the memory, that cost a second of system time per 3 s run, against 0.6 s for
    // plain pages.
    std::lock_guard<std::mutex> lock(mu_);
    use(p, size);
    return p;
  }

  void use(void *p, size_t size) {
    live_[p] = size;
    live_bytes_ += size;
    peak_live_ = std::max(peak_live_, live_bytes_);
  }

  void give(void *p) {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) {
      lock.unlock();
      c10::free_cpu(p);  // a small block
      return;
    }
    size_t size = it->second;
    live_.erase(it);
    live_bytes_ -= size;
    lru_.push_front(Block{p, size});
    by_size_.emplace(size, lru_.begin());
    cached_ += size;
    // Keep at most the peak in use (the weights included, so several batches' activations); give the
    // rest back, oldest first.
    size_t cap = std::max(min_cache_, peak_live_);
    while (cached_ > cap) {
      Block b = lru_.back();
      auto range = by_size_.equal_range(b.size);
      for (auto i = range.first; i != range.second; ++i) {
        if (i->second == std::prev(lru_.end())) {
          by_size_.erase(i);
          break;
        }
      }
      lru_.pop_back();
      cached_ -= b.size;
      munmap(b.p, b.size);
    }
  }

  const size_t min_bytes_, min_cache_;
  std::mutex mu_;
  std::list<Block> lru_;  // cached blocks, most recently freed first
  std::multimap<size_t, std::list<Block>::iterator> by_size_;
  std::unordered_map<void *, size_t> live_;
  size_t cached_ = 0, live_bytes_ = 0, peak_live_ = 0;
};

CachingAllocator *the_allocator = nullptr;

CachingAllocator &CachingAllocator::instance() { return *the_allocator; }

}  // namespace

extern "C" {

// vggish_cache_cpu_allocations makes libtorch allocate CPU tensors of min_bytes and more from the
// cache, keeping at least min_cache bytes of freed blocks. Tensors allocated before keep their
// allocator. Calls after the first do nothing.
void vggish_cache_cpu_allocations(size_t min_bytes, size_t min_cache) {
  static std::once_flag once;
  std::call_once(once, [&] {
    the_allocator = new CachingAllocator(min_bytes, min_cache);  // lives as long as the process
    c10::SetCPUAllocator(the_allocator, /*priority=*/1);
  });
}

// vggish_trim_cpu_cache gives the kernel back the freed blocks the cache keeps, and measures the peak
// in use afresh: what a one-off phase freed (weights staged on their way to a GPU) is not the working
// set the cache keeps memory for. Nothing happens where the cache is not in use.
void vggish_trim_cpu_cache() {
  if (the_allocator != nullptr) {
    the_allocator->trim();
  }
}

}  // extern "C"
