package livepulse.bench;

import static java.nio.charset.StandardCharsets.UTF_8;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.*;
import org.apache.kafka.streams.kstream.*;

/**
 * What bench/quix.py counts, as Kafka Streams' documentation writes it: likes per key in 60 s
 * tumbling windows on event time, RocksDB, each window emitted once it closes; one thread.
 */
public final class TumblingLikes {
  private static final ObjectMapper JSON = new ObjectMapper();

  public static void main(String[] args) throws InterruptedException {
    String group = System.getenv("BENCH_GROUP");
    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, group);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, System.getenv("BENCH_BROKER"));
    props.put(StreamsConfig.STATE_DIR_CONFIG, System.getenv("BENCH_STATE_DIR"));
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    double commitSeconds = Double.parseDouble(System.getenv("BENCH_COMMIT_SECONDS"));
    props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Math.round(commitSeconds * 1000));
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    // the value parsed once: the timestamp extractor sees the parsed value
    Serde<JsonNode> json = Serdes.serdeFrom((topic, node) -> node.toString().getBytes(UTF_8),
        (topic, data) -> {
          try {
            return data == null ? null : JSON.readTree(data);
          } catch (IOException e) {
            throw new SerializationException(e);
          }
        });
    StreamsBuilder builder = new StreamsBuilder();
    builder.stream(System.getenv("BENCH_TOPIC"), Consumed.with(Serdes.String(), json)
            .withTimestampExtractor((record, partitionTime) -> {
              JsonNode ts = ((JsonNode) record.value()).get("ts");
              return ts == null ? partitionTime : ts.asLong();
            }))
        .filter((key, event) -> "like".equals(event.path("type").asText()))
        .mapValues(event -> event.path("count").asLong())
        .groupByKey(Grouped.with(Serdes.String(), Serdes.Long()))
        .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofSeconds(60)))
        .reduce(Long::sum, Materialized.with(Serdes.String(), Serdes.Long()))
        .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
        .toStream()
        .map((window, likes) -> KeyValue.pair(window.key(), likes))
        .to(group + ".out", Produced.with(Serdes.String(), Serdes.Long()));

    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    CountDownLatch closed = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close(Duration.ofSeconds(20));
      closed.countDown();
    }));
    streams.setUncaughtExceptionHandler(e -> {
      e.printStackTrace();
      System.exit(1);
      return null;
    });
    streams.start();
    closed.await();
  }
}
